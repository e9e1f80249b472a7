from filesim.cli import main

if __name__ == "__main__":  # a worker process (spawned) imports this module too
    main()
