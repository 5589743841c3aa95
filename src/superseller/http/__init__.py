"""Request helpers the JSON API (`api/`) and the HTML pages (`web/`) share: the app's
services, the error body, sessions and who is asking, job filters from query strings.

Both layers import from here; neither imports the other.
"""
