"""The sizes a ``POST /classify`` request meets on its way to the endpoint, in bytes, and the
API's promise below them. One home for the construct that sets the proxy's limit and writes API
Gateway's 413 text, and for the proxy that enforces it (docs/deploy.md, "Classify images")."""

API_GATEWAY_PAYLOAD = 10 * 1024 * 1024  # a REST API's request payload quota
LAMBDA_SYNC_PAYLOAD = 6 * 1024 * 1024  # a synchronous invocation's event (the JSON, body base64-encoded)
INVOKE_ENDPOINT_PAYLOAD = 6 * 1024 * 1024  # InvokeEndpoint's Body on a real-time endpoint
# The API's promise: its base64 form and the event around it fit Lambda's limit with room to
# spare, so a body just over it still reaches the proxy and gets its 413
MAX_BODY_BYTES = 4 * 1024 * 1024
