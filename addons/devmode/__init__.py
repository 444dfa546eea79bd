"""The dev proxy, whole: `run_proxy.py dev` (docs/developers/dev-proxy.md) catches an unchanged
app's Seedance calls on this machine with a mitmproxy regular-mode proxy on loopback, answers them
from the simulator (or a target it names), shows them live, records and replays them. It is a
process of its own, assembled in launch/dev.py; nothing of the edge's chain runs in it.

Its mitmproxy addons, in the order launch/dev.py adds them:
    intercept.py         which traffic is caught (TLS to the intercepted hosts), which tunnelled
    replayer.py          `--replay FILE`: answers from a cassette
    callback_catcher.py  local `callback_url`s taken out of creates, handed to the relay
    router.py            every caught call to the target (the simulator or a URL)
    guard.py             a caught call the target does not name is answered 502, never sent
    recorder.py          `--record FILE`: the exchanges into a cassette
    tail.py              the live tail, one line a call

Beside them, the plain logic they use (free of mitmproxy, tested without it):
    settings.py          the `dev` command line read into DevSettings (its options are
                         declared in proxy/options/dev_schema.py), `env`, `-- CMD ARGS…`
    targets.py           where caught calls go: the simulator or a NextAPI edge's URL
    cassette.py          cassettes: JSON Lines of exchanges, written and replayed
    redact.py            keys and credentials out of everything shown or written
    tail_lines.py        the tail's lines, as text or JSON
    credits.py           what a caught call would cost at the edge
    callback_relay.py    watching a caught task and posting its status changes, signed
    trust.py             the CA bundle and the environment that point a program at the proxy
    respond.py           an error answer in Seedance's envelope (the addons share it)
"""

# flow.metadata keys shared by the dev addons
CAUGHT = "nextapi_dev.caught"  # the intercepted host the app asked for
APP_PATH = "nextapi_dev.app_path"  # the path (with query) the app asked for
SOURCE = "nextapi_dev.source"  # who answered: sim | target | replay | miss | refused
APP_AUTHORIZATION = "nextapi_dev.app_authorization"  # the app's own, kept in memory only
CALLBACK_DESTINATION = "nextapi_dev.callback_destination"
