"""What more than one feature's tab uses: chart bases, table models, form fields,
actions, banners, job progress, notifications and pollers; named for what they are.
Nothing here imports a feature package (an import-linter contract checks it)."""
