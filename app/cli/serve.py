"""``imgclf serve`` and ``imgclf predict``: a trained model behind the SageMaker endpoint contract."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys

from app.local_serving import ModelServer, content_type_of, invoke

from .dataset import EXIT_FAILED, EXIT_OK, UsageError, positive_int


def add_serve_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve a model.tar.gz with the SageMaker endpoint contract")
    p.add_argument("--model", required=True, help="model.tar.gz (or its unpacked folder)")
    p.add_argument("--port", type=int, default=8080)
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


def run_serve(args: argparse.Namespace) -> int:
    server = ModelServer(args.model, port=args.port, host=args.host)
    try:
        url = server.start()
    except (OSError, ValueError, RuntimeError) as err:
        raise UsageError(str(err)) from None
    print(f"endpoint: {url} (POST /invocations, GET /ping); Ctrl-C stops it", flush=True)

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # so that the server process is stopped with us

    signal.signal(signal.SIGTERM, stop)
    try:
        assert server._proc is not None
        server._proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return EXIT_OK


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
            except (ValueError, OSError) as err:
                raise UsageError(f"cannot call {url}: {err}") from None
        else:
            status, _, response = invoke(url, body, content_type_of(path))
        if status != 200:
            failed += 1
            sys.stderr.write("{}: HTTP {} {}\n".format(path, status, response.decode("utf-8", "replace")))
            continue
        result = json.loads(response)
        if args.json:
            print(json.dumps({"image": path, **result}))
        else:
            best = ", ".join("{} {:.3f}".format(t["label"], t["probability"]) for t in result["top_k"][: args.top_k])
            print(f"{path}: {best}")
    return EXIT_FAILED if failed else EXIT_OK


def run_predict(args: argparse.Namespace) -> int:
    if args.url:
        return _predict(args.url.rstrip("/"), args)
    if args.api:
        return _predict(args.api, args, api=True)
    try:
        with ModelServer(args.model) as server:
            return _predict(server.url, args)
    except (OSError, ValueError, RuntimeError) as err:
        raise UsageError(str(err)) from None
