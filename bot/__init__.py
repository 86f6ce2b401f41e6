"""The Discord bot process: the discord.py client (`client`), the `/disco` cog (`cogs`), the
poster that shows progress and delivers results (`poster`), the engine supervisor
(`supervisor`), its settings (`config`) and the `disco bot` command (`cli`).

Never imports torch: the engine runs in its own process, and the database is the only
interface between the two.
"""
