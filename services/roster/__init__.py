"""The roster service: EW's districts, schools and teachers, and the change sets that write them."""
