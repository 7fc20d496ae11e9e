"""The Temporal client every Signoff process uses: one data converter (encrypting when a key is set)."""

from temporalio.client import Client

from config.settings import Settings
from workflows.codec import data_converter


async def connect(settings: Settings, lazy: bool = False) -> Client:
    return await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace,
                                data_converter=data_converter(settings), lazy=lazy)
