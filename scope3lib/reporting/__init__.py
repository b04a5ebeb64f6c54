"""What people see: the executive dashboard, its panels and charts, and scheduled papermill reports."""
