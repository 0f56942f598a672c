"""Demo content for `aftercare dev --demo`: three Synthea patients, one journey and its templates."""
