"""What the front ends show: table cells and text reports, figures, the JSON documents of the API."""
