"""The incident console: a web page for responders and read-only viewers, at ``/console``.

``config`` holds its settings, ``auth`` sign-in, sessions and CSRF, ``render`` the HTML
(server-rendered, no front-end build), ``routes`` the pages and the live event stream.
"""
