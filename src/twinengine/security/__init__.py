"""API keys with scopes, admin login, rate limits and the request policy that ties them."""
