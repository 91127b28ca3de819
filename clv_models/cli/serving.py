"""Online: ``clv serve`` (the CLV endpoint) and ``clv push-event`` (live events)."""

from __future__ import annotations

import click

from clv_models.cli.common import config, console


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; any other than loopback needs a token.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--model", "model_name", default=None, metavar="NAME",
              help="The trained model to serve: naive, bgnbd_gg, xgboost, deep_ziln or blend "
                   "(default: the champion `clv train` chose).")
@click.option("--token-env", default="CLV_API_TOKEN", show_default=True,
              help="Environment variable holding the bearer token (at least 16 characters); "
                   "when set, /v1 requests need `Authorization: Bearer <token>`.")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
@click.option("--access-log/--no-access-log", default=True, show_default=True,
              help="One log line per request (at log level info); off saves CPU per request.")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, model_name: str, token_env: str,
          log_level: str, access_log: bool) -> None:
    """The online CLV endpoint: GET /v1/clv/{customer_id}, POST /v1/clv, GET /health.

    Reads the customers' features from the Feast online store (after `clv features`) and
    predicts with the saved model; OpenAPI schema at /openapi.json, docs at /docs.
    """
    import os

    from clv_models.serving import app as endpoint

    endpoint.serve(config(ctx), host=host, port=port, model_name=model_name,
                   token=os.environ.get(token_env) or None, token_env=token_env,
                   log_level=log_level, access_log=access_log, echo=console.print)


@click.command("push-event")
@click.argument("kind", type=click.Choice(["order", "return"]))
@click.argument("customer_id")
@click.argument("amount", type=click.FloatRange(min=0))
@click.option("--at", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S",
                                           "%Y-%m-%d %H:%M:%S"]),
              help="When it happened, UTC (default: now).")
@click.pass_context
def push_event(ctx: click.Context, kind: str, customer_id: str, amount: float, at) -> None:
    """Add a live order (gross total) or return (refund) to a customer's online features.

    The customer's rows go to the online store through the Feast push sources at once; the
    next `clv build` + `clv features` recomputes them exactly (README, "Online serving").
    """
    from clv_models.features import live

    result = live.push_event(config(ctx), live.LiveEvent(customer_id, kind, amount, at))
    def fmt(value) -> str:
        return f"{value:,.2f}" if isinstance(value, float) else str(value)

    changes = ", ".join(f"{k} {fmt(result.before[k])} -> {fmt(result.after[k])}"
                        for k in result.before if result.before[k] != result.after[k])
    console.print(f"pushed {kind} of {amount:g} for {customer_id} (features as of "
                  f"{result.as_of:%Y-%m-%d}) to {', '.join(result.views)} in "
                  f"{result.seconds * 1000:.0f} ms: {changes}")
