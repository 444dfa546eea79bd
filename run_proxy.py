"""The NextAPI Edge command: `python run_proxy.py [--role …] …`, `dev …`, `purge …` (see docs/).
Everything it runs is assembled in launch/, the composition root."""

import sys


def main() -> None:
    from launch.optimized import reexec_optimized

    reexec_optimized(sys.argv[1:])  # before the heavy imports: a start imports everything once
    from launch.cli import main as run

    run()


if __name__ == "__main__":
    main()
