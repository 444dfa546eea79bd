"""The dev proxy's addons (`run_proxy.py dev`), in the order launch/dev.py adds them:
intercept → replayer → callbacks → router → guard → recorder → tail."""

# flow.metadata keys shared by the dev addons
CAUGHT = "nextapi_dev.caught"  # the intercepted host the app asked for
APP_PATH = "nextapi_dev.app_path"  # the path (with query) the app asked for
SOURCE = "nextapi_dev.source"  # who answered: sim | target | replay | miss | refused
APP_AUTHORIZATION = "nextapi_dev.app_authorization"  # the app's own, kept in memory only
CALLBACK_DESTINATION = "nextapi_dev.callback_destination"
