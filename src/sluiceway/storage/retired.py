"""Storage that Sluiceway recognises only to refuse: Azure Data Lake Storage Gen1.

Microsoft retired ADLS Gen1 on 29 February 2024 and there is no emulator for it, so a Gen1
datastore (``type: azure_data_lake_gen1``, ARM ``AzureDataLakeGen1``) or an ``adl://`` URL gets
this message, in every face, rather than a generic "not supported".
"""

from __future__ import annotations

from sluiceway.errors import UnsupportedError

GEN1_TYPES = frozenset({"azure_data_lake_gen1", "azuredatalakegen1"})
GEN1_SCHEME = "adl"

_GEN1 = (
    "Azure Data Lake Storage Gen1 ({what}) was retired by Microsoft on 29 February 2024 and "
    "has no emulator, so Sluiceway does not support it. Move the data to ADLS Gen2 and use a "
    "datastore of type azure_data_lake_gen2 (account_name, filesystem; ARM datastoreType "
    "AzureDataLakeGen2) or abfss://<filesystem>@<account>.dfs.core.windows.net/<path> URLs."
)


def is_gen1_type(type_name: str) -> bool:
    return type_name.replace("-", "_").lower() in GEN1_TYPES


def gen1_refusal(what: str, target: str | None = None) -> UnsupportedError:
    """The error for a Gen1 datastore type or ``adl://`` URL named ``what``."""
    return UnsupportedError(_GEN1.format(what=what), target=target)
