"""Workflows: enrollments (one per patient and journey) and the reconciliation that keeps their
projections in step."""

from workflows.enrollment import EnrollmentWorkflow
from workflows.reconcile import ReconcileEnrollmentsWorkflow

WORKFLOWS: list[type] = [EnrollmentWorkflow, ReconcileEnrollmentsWorkflow]

__all__ = ["WORKFLOWS", "EnrollmentWorkflow", "ReconcileEnrollmentsWorkflow"]
