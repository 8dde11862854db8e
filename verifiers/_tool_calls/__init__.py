"""What `tool_call_match` is made of: reading calls (`parsing`), BFCL's rules for one call
(`bfcl`), the judgment of all calls of a completion (`judge`), pairing calls (`assignment`) and
the optional process pool (`pool`)."""
