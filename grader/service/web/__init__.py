"""The web pages: server-rendered Jinja2 templates on the same domain services and access rules as the
REST API, one stylesheet and a little plain JavaScript, every asset served by the service itself."""
