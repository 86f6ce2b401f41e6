"""`disco bot`: run the Discord bot process (and, unless configured off, the engine under it).

    DISCORD_TOKEN=... disco bot --config config.toml [--data-dir data]

The token comes only from the environment. `[discord] api_base` / `gateway_url` point
discord.py at another REST base and gateway (a local fake for tests, an HTTP proxy that
shares rate limits): they patch discord.py's class-level `Route.BASE` and default gateway, which
have no public option.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys


def add_bot_command(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("bot", help="run the Discord bot (token from DISCORD_TOKEN)",
                            description="Run the Discord bot; it starts and watches the engine "
                                        "unless [bot] spawn_engine = false.")
    p.add_argument("--config", help="TOML config file (see config.example.toml)")
    p.add_argument("--data-dir", help="database and job files (default: DISCO_DATA_DIR or ./data)")
    p.set_defaults(func=cmd_bot)


def apply_endpoints(api_base: str, gateway_url: str) -> None:
    """Point discord.py at `api_base` / `gateway_url` (empty = Discord's own)."""
    import discord.gateway
    import discord.http
    import yarl

    if api_base:
        discord.http.Route.BASE = api_base.rstrip("/")
    if gateway_url:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


def cmd_bot(args: argparse.Namespace) -> int:
    from disco.config import ConfigError

    from .config import BotConfig, MissingToken, token_from_environment

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        token = token_from_environment()
        config = BotConfig.load(args.config, args.data_dir)
    except (MissingToken, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    apply_endpoints(config.api_base, config.gateway_url)
    try:
        asyncio.run(_run(config, token))
    except KeyboardInterrupt:
        return 130
    return 0


async def _run(config, token: str) -> None:
    from .client import DiscoBot

    async with DiscoBot(config) as bot:  # closes the bot (poster, engine, database) on the way out
        # SIGTERM (systemd, docker stop) must also stop the engine child, not orphan it.
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, lambda: loop.create_task(bot.close()))
        await bot.start(token)
