"""The Outreach console: server-rendered pages for the people who run outreach, served by the API's app
at `/console`. One module per page, its templates in `templates/`; pages call the same services and
store functions as the API, never the API over HTTP and never SQL of their own."""
