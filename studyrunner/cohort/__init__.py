"""Cohort stage: the clinical table (read, mapped, eligible, validated) and the split.

- ``clinical_table``: read the table, map messy labels, coerce numeric columns, apply
  inclusion/exclusion criteria (every excluded patient recorded with a reason);
- ``expectations``: Great Expectations suites from ``validation/*.yaml`` written in terms of
  column roles, run on the table, failing rows identified by patient id;
- ``split``: stratified (controlled-rounding) or by-site allocation to partitions.
"""
