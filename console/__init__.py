"""The Outreach console: server-rendered pages for the people who run outreach, at `/console`.

Mounted by the API's app factory. One module per page, its templates in `templates/`; pages call the
API's own handlers and the domain's services and store functions in-process, never the API over HTTP
and never SQL of their own."""
