"""Starting enrollments and delivering patient events to them: the path from the API into Temporal."""
