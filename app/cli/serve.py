"""``imgclf serve`` and ``imgclf predict``: a trained model behind the SageMaker endpoint contract."""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import sys
from typing import Any, Dict, Optional

from app.local_serving import ModelServer, ServeError, connection_problem, content_type_of, endpoint_url, invoke

from .dataset import EXIT_FAILED, EXIT_OK, UsageError, one_line, positive_int


def tcp_port(text: str) -> int:
    """A TCP port to listen on: 0 (any free port) to 65535."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a TCP port (0-65535)")
    return value


def add_serve_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve a model.tar.gz with the SageMaker endpoint contract")
    p.add_argument("--model", required=True, help="model.tar.gz (or its unpacked folder)")
    p.add_argument("--port", type=tcp_port, default=8080, help="0 picks a free port (default: 8080)")
    p.add_argument("--host", default="127.0.0.1")
    p.set_defaults(run=run_serve)

    p = sub.add_parser("predict", help="classify images with a model or a running endpoint")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="model.tar.gz: served for the call, then stopped")
    source.add_argument("--url", help="a running server, e.g. http://127.0.0.1:8080")
    source.add_argument("--api", help="the deployed API's /classify URL (signed with your AWS credentials)")
    p.add_argument(
        "--token",
        default=os.environ.get("IMGCLF_API_TOKEN"),
        help="with --api on a stage with api_auth cognito: the user's Cognito ID token (default: $IMGCLF_API_TOKEN)",
    )
    p.add_argument("images", nargs="+")
    p.add_argument("--top-k", type=positive_int, default=3)
    p.add_argument("--json", action="store_true", help="print the verbose JSON responses")
    p.set_defaults(run=run_predict)


def _model_path(model: str) -> str:
    if not os.path.exists(model):
        raise UsageError(f"{model} does not exist")
    return model


def _failed(command: str, message: str) -> int:
    """One line on stderr for work that failed; exit 1."""
    sys.stderr.write(f"imgclf {command}: error: {one_line(message)}\n")
    return EXIT_FAILED


def run_serve(args: argparse.Namespace) -> int:
    server = ModelServer(_model_path(args.model), port=args.port, host=args.host, log=sys.stderr)
    try:
        url = server.start()
    except ServeError as err:
        return _failed("serve", str(err))
    print(f"endpoint: {url} (POST /invocations, GET /ping); Ctrl-C stops it", flush=True)

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # so that the server process is stopped with us

    signal.signal(signal.SIGTERM, stop)
    try:
        code = server.wait()
    except KeyboardInterrupt:
        return EXIT_OK
    finally:
        server.stop()
    return _failed("serve", f"the model server stopped with exit code {code}") if code else EXIT_OK


def _answer(url: str, path: str, status: int, response: bytes) -> Optional[Dict[str, Any]]:
    """The endpoint's verbose JSON answer, or None after one line on stderr."""
    text = response.decode("utf-8", "replace").strip()
    if status != 200:
        sys.stderr.write(f"{path}: HTTP {status} {text}\n")
        return None
    try:
        result = json.loads(text)
        top_k = result.get("top_k") if isinstance(result, dict) else None
        if not isinstance(top_k, list) or not all(isinstance(t, dict) for t in top_k):
            raise ValueError("no top_k")
        return result
    except ValueError:
        sys.stderr.write(f"{path}: {url} answered HTTP 200 with something other than a prediction: {text[:80]!r}\n")
        return None


def _predict(url: str, args: argparse.Namespace, api: bool = False) -> int:
    failed = 0
    for path in args.images:
        try:
            with open(path, "rb") as f:
                body = f.read()
        except OSError as err:
            raise UsageError(f"cannot read {path}: {err.strerror}") from None
        if api:
            from app.cloud import invoke_api

            try:
                status, response = invoke_api(url, body, content_type_of(path), token=args.token)
            except ValueError as err:  # no AWS credentials, or a URL that urllib cannot call
                raise UsageError(f"cannot call {url}: {err}") from None
            except (OSError, http.client.HTTPException) as err:
                return _failed("predict", f"cannot reach {url}: {connection_problem(err)}")
        else:
            try:
                status, _, response = invoke(url, body, content_type_of(path))
            except (OSError, http.client.HTTPException) as err:
                return _failed("predict", f"cannot reach {url}: {connection_problem(err)}")
        result = _answer(url, path, status, response)
        if result is None:
            failed += 1
        elif args.json:
            print(json.dumps({"image": path, **result}))
        else:
            best = ", ".join(
                "{} {:.3f}".format(t.get("label"), t.get("probability", 0.0)) for t in result["top_k"][: args.top_k]
            )
            print(f"{path}: {best}")
    return EXIT_FAILED if failed else EXIT_OK


def run_predict(args: argparse.Namespace) -> int:
    if args.url:
        try:
            url = endpoint_url(args.url)
        except ValueError as err:
            raise UsageError(f"--url: {err}") from None
        return _predict(url, args)
    if args.api:
        try:
            endpoint_url(args.api)
        except ValueError as err:
            raise UsageError(f"--api: {err}") from None
        return _predict(args.api, args, api=True)
    try:
        with ModelServer(_model_path(args.model)) as server:
            return _predict(server.url, args)
    except ServeError as err:
        return _failed("predict", str(err))
