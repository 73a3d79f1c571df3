"""Runs before a cold-started training job's entry point: observe it."""

import grader_job_observer

grader_job_observer.install()
