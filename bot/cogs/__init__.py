"""The bot's cogs, one extension module each, loaded by `bot.client.DiscoBot.setup_hook`."""

EXTENSIONS = ("bot.cogs.disco", "bot.cogs.study", "bot.cogs.animate", "bot.cogs.jobs", "bot.cogs.admin",
              "bot.cogs.presets", "bot.cogs.info", "bot.cogs.mine", "bot.cogs.describe", "bot.cogs.help",
              "bot.cogs.apps")
