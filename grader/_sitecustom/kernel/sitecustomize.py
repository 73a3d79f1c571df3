"""Runs when the notebook's kernel (or any Python it starts) starts."""

import grader_kernel_site

grader_kernel_site.install()
