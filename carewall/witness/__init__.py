"""Witnesses (C2SP tlog-witness, tlog-cosignature): asking them, and being one.

- :mod:`.cosignature` (pure): cosignature/v1 keys, signing, verifying, quorum counting;
- :mod:`.protocol` (pure): the add-checkpoint wire format;
- :mod:`.config`: the witnesses a log asks and the logs a witness witnesses (TOML);
- :mod:`.store`: durable state (compare-and-swap per witnessed log; collected cosignatures);
- :mod:`.client`: the log's background task that asks witnesses;
- :mod:`.server`: the witness's HTTP endpoint.
"""
