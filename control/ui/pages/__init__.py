"""The dashboard's pages, one module per page (or per tab of the org page). Each handler reads
and writes through the admin API's own handlers (`control.ui.web.call`), never its own SQL."""
