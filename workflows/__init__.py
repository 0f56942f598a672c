"""Workflows: the journey interpreter (one enrollment per workflow)."""

from workflows.enrollment import EnrollmentWorkflow

WORKFLOWS: list[type] = [EnrollmentWorkflow]

__all__ = ["WORKFLOWS", "EnrollmentWorkflow"]
