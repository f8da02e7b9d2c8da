from streams.cli import main

if __name__ == "__main__":  # not when a spawned process (the learner) imports it
    main()
