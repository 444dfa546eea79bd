"""Work the control plane does in the background: webhook delivery (signed), the retention
purge, automatic key suspension, cancelling a closed account's tasks, the video sweep."""
