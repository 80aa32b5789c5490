"""Problems: where they come from (sources), how they are cleaned (curation), and the synthetic
task whose generator is also an oracle for step correctness."""
