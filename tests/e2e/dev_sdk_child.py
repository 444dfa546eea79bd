"""Run by `run_proxy.py dev -- python dev_sdk_child.py byteplus|volcengine [--callback URL]`: the
official SDK constructed with no base_url at all (it talks to the real Seedance host), creates a
task and polls it until it succeeds. Prints `host <base url>` and `succeeded <task id>`."""

from __future__ import annotations

import sys
import time


def client(sdk: str):
    if sdk == "byteplus":
        from byteplussdkarkruntime import Ark
    else:
        from volcenginesdkarkruntime import Ark
    # No base_url: the SDK's default host, exactly as an unchanged app would run.
    return Ark(api_key="app-own-key-not-used", max_retries=0, timeout=20)


def main() -> int:
    sdk = sys.argv[1]
    ark = client(sdk)
    print(f"host {ark._base_url}", flush=True)  # the default the SDK chose
    extra = {}
    if "--callback" in sys.argv:
        extra["callback_url"] = sys.argv[sys.argv.index("--callback") + 1]
    task = ark.content_generation.tasks.create(
        model="seedance-1-0-pro-250528",
        content=[{"type": "text", "text": "a lighthouse at dusk --rs 480p --dur 2"}],
        **extra,
    )
    deadline = time.monotonic() + 30
    while (got := ark.content_generation.tasks.get(task_id=task.id)).status != "succeeded":
        if got.status in ("failed", "expired", "cancelled") or time.monotonic() > deadline:
            print(f"ended {got.status}", flush=True)
            return 1
        time.sleep(0.1)
    print(f"succeeded {task.id}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
