"""What providers tell us after a send: delivery status, email events, and patients' SMS replies."""
