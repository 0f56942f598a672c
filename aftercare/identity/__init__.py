"""Identity resolution: which patient records, from whichever sources, are the same person.

Records sharing an identifier (system and value) are merged automatically; configurable rules (phone,
email or name with the birth date) either merge or propose a candidate for review. Every merge keeps
its rule and evidence and can be reversed.
"""
