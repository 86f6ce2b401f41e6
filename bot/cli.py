"""`disco bot`: run the Discord bot process (and, unless configured off, the engine under it).

    DISCORD_TOKEN=... disco bot --config config.toml [--data-dir data] [--no-engine]

The token comes only from the environment. `[discord] api_base` / `gateway_url` point
discord.py at another REST base and gateway (a local fake for tests, an HTTP proxy that
shares rate limits): they patch discord.py's class-level `Route.BASE` and default gateway, which
have no public option.
"""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import signal
import sys
from pathlib import Path


def add_bot_command(commands: argparse._SubParsersAction, config_options: argparse.ArgumentParser) -> None:
    """`config_options`: the entry's `--config` / `--data-dir` parent parser."""
    p = commands.add_parser("bot", parents=[config_options],
                            help="run the Discord bot (token from DISCORD_TOKEN)",
                            description="Run the Discord bot; it starts and watches the engine "
                                        "unless [bot] spawn_engine = false or --no-engine.")
    p.add_argument("--no-engine", action="store_true",
                   help="start no engine: `disco worker`s render (overrides [bot] spawn_engine)")
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


def _no_voice_warnings(record: logging.LogRecord) -> bool:
    """discord.py warns at every start that voice is unsupported (PyNaCl, davey): this bot never
    joins a voice channel, and the warnings read like a broken install."""
    return "voice will NOT be supported" not in record.getMessage()


def cmd_bot(args: argparse.Namespace, sections: dict[str, dict], data_dir: Path) -> int:
    """`sections`: the config file as `disco` loaded it; `data_dir`: the folder it resolved."""
    from .config import BotConfig, MissingToken, token_from_environment

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("discord.client").addFilter(_no_voice_warnings)
    try:
        token = token_from_environment()
    except MissingToken as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    config = BotConfig.from_sections(sections, data_dir, config_path=args.config)
    if args.no_engine:
        config = dataclasses.replace(config, spawn_engine=False)
    apply_endpoints(config.api_base, config.gateway_url)
    import aiohttp
    import discord

    from storage import StorageError

    from .client import LoginTimeout

    api = "Discord's API at " + discord.http.Route.BASE
    try:
        asyncio.run(_run(config, token))
    except StorageError as exc:  # a wrong database URL or password, a foreign database: one line
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except discord.LoginFailure:  # Discord answered 401 to the login
        print("error: Discord refused the bot token in DISCORD_TOKEN; copy it again from the developer "
              "portal (your application → Bot → Reset Token)", file=sys.stderr)
        return 2
    except aiohttp.ClientConnectionError as exc:  # only the login gives up; the gateway reconnects
        print(f"error: cannot reach {api} ({exc}); check this host's network, DNS and proxy, or "
              "[discord] api_base in the config file", file=sys.stderr)
        return 2
    except LoginTimeout as exc:
        print(f"error: {api} accepted the connection but gave {exc}; check this host's proxy, or "
              "[discord] api_base in the config file", file=sys.stderr)
        return 2
    except discord.HTTPException as exc:  # a wrong api_base path (404), a failing proxy (502)
        status = f"{exc.status} {exc.response.reason or ''}".strip()
        print(f"error: {api} answered the login with HTTP {status}; check "
              "[discord] api_base in the config file (leave it out for Discord's own), this host's "
              "proxy, or https://discordstatus.com", file=sys.stderr)
        return 2
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
