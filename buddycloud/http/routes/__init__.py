"""The REST routes, one module per resource; `ROUTES` in `buddycloud.http.app` lists them."""
