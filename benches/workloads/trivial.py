print("hello from a strategy")
