"""``imgclf serve`` and ``imgclf predict``: a trained model behind the SageMaker endpoint contract."""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import stat
import sys
from typing import Any, Dict, Optional

from app.local_serving import (
    Capture,
    ModelServer,
    ServeError,
    connection_problem,
    content_type_of,
    endpoint_url,
    invoke,
)
from imgclf_core import capture as capture_rules
from imgclf_core.payload_limits import INVOKE_ENDPOINT_PAYLOAD

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


def percent(text: str) -> float:
    """A sampling percentage: 0 to 100."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    try:
        return capture_rules.check_percent(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def endpoint_name(text: str) -> str:
    try:
        return capture_rules.check_endpoint_name(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _capture(args: argparse.Namespace) -> Optional[Capture]:
    """The capture settings of ``serve``; the folder is created here (UsageError when it is a file)."""
    if not args.capture:
        return None
    if os.path.exists(args.capture) and not os.path.isdir(args.capture):
        raise UsageError(f"--capture: {args.capture} is a file, not a folder")
    os.makedirs(args.capture, exist_ok=True)  # OSError: exit 1 with the reason (cli.main)
    return Capture(args.capture, args.capture_percent, args.endpoint_name)


def add_serve_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve a model.tar.gz with the SageMaker endpoint contract")
    p.add_argument("--model", required=True, help="model.tar.gz (or its unpacked folder)")
    p.add_argument("--port", type=tcp_port, default=8080, help="0 picks a free port (default: 8080)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument(
        "--capture",
        metavar="DIR",
        help="write endpoint data capture (SageMaker's JSON lines) under DIR/ENDPOINT/AllTraffic/YYYY/MM/DD/HH/",
    )
    p.add_argument(
        "--capture-percent",
        type=percent,
        default=100.0,
        metavar="P",
        help="with --capture: the percentage of requests captured (default: 100)",
    )
    p.add_argument(
        "--endpoint-name",
        type=endpoint_name,
        default=capture_rules.LOCAL_ENDPOINT,
        metavar="NAME",
        help=f"with --capture: the endpoint's name in the capture paths (default: {capture_rules.LOCAL_ENDPOINT})",
    )
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
    capture = _capture(args)
    server = ModelServer(_model_path(args.model), port=args.port, host=args.host, log=sys.stderr, capture=capture)
    try:
        url = server.start()
    except ServeError as err:
        return _failed("serve", str(err))
    print(f"endpoint: {url} (POST /invocations, GET /ping); Ctrl-C stops it", flush=True)
    if capture is not None:
        where = os.path.join(capture.folder, capture.endpoint, capture_rules.DEFAULT_VARIANT)
        print(f"capturing {capture.percent:g}% of the answered requests under {where}", flush=True)

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # so that the server process is stopped with us

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        code = server.wait()
    except KeyboardInterrupt:
        return EXIT_OK
    finally:
        server.stop()
        signal.signal(signal.SIGTERM, previous)
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
        if not isinstance(top_k, list) or not top_k or not all(_is_ranked_label(t) for t in top_k):
            raise ValueError("no top_k")
        return result
    except (ValueError, RecursionError):
        sys.stderr.write(f"{path}: {url} answered HTTP 200 with something other than a prediction: {text[:80]!r}\n")
        return None


def _image_body(path: str) -> Optional[bytes]:
    """The file's bytes; None after one line on stderr when it is over the endpoint's payload
    limit (not read whole); UsageError when it cannot be read or is not a regular file (a
    device or a named pipe would be read without end, or wait for a writer)."""
    try:
        info = os.stat(path)  # before opening: opening a named pipe waits for a writer
        if not stat.S_ISREG(info.st_mode):
            raise UsageError(f"{path} is not a regular file ({_kind(info.st_mode)})")
        if info.st_size > INVOKE_ENDPOINT_PAYLOAD:
            sys.stderr.write(
                f"{path}: {info.st_size} bytes, over the endpoint's payload limit of {INVOKE_ENDPOINT_PAYLOAD}\n"
            )
            return None
        with open(path, "rb") as f:
            return f.read(INVOKE_ENDPOINT_PAYLOAD + 1)
    except OSError as err:
        raise UsageError(f"cannot read {path}: {err.strerror}") from None


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "a device"


def _is_ranked_label(item: object) -> bool:
    """Whether ``item`` is a top_k entry: a label and its probability."""
    if not isinstance(item, dict) or not isinstance(item.get("label"), str):
        return False
    probability = item.get("probability")
    return isinstance(probability, (int, float)) and not isinstance(probability, bool)


def _predict(url: str, args: argparse.Namespace, api: bool = False) -> int:
    failed = 0
    for path in args.images:
        body = _image_body(path)
        if body is None:
            failed += 1
            continue
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
