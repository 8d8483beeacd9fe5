"""The operator's cap on a job's worker processes, checked where a job's size is chosen: when a
deployment is created or changed, and when an invocation overrides its instance count."""

from __future__ import annotations

from sluiceway.errors import ValidationError


def check_job_workers(
    instance_count: int, max_concurrency: int, cap: int | None, *, target: str, what: str
) -> None:
    """That ``instance_count x max_concurrency`` worker processes fit the per-job cap.

    Args:
        instance_count: The instances asked for.
        max_concurrency: The deployment's ``max_concurrency_per_instance``.
        cap: ``SLUICEWAY_MAX_WORKERS_PER_JOB``; None: no cap.
        target: The field the error names.
        what: How the error names the instance count (``Compute.InstanceCount``, say).

    Raises:
        ValidationError: it asks for more workers than the cap, naming the largest count that
            fits.
    """
    workers = instance_count * max_concurrency
    if cap is None or workers <= cap:
        return
    fits = cap // max_concurrency
    advice = (
        f"Give {what} at most {fits}."
        if fits >= 1
        else f"max_concurrency_per_instance {max_concurrency} alone is over it: give at most {cap}."
    )
    raise ValidationError(
        f"{what} {instance_count} is not accepted: with max_concurrency_per_instance "
        f"{max_concurrency} it asks for {workers} worker processes, and this server runs at most "
        f"{cap} for a job (SLUICEWAY_MAX_WORKERS_PER_JOB). {advice}",
        target=target,
    )
