"""Reports: the paper's tables and figures from eval results, the published numbers, the protocol runner.

    report(results, out)        # report.md / report.json / figure3_<method>.png   (reports.report)
    run_protocol(src, out, ...) # convert -> train per generator -> eval -> report (reports.protocol)
    PAPER_TABLES                # Tables 2-5 as published                         (reports.paper_numbers)
"""
