from proxy.runtime import main

if __name__ == "__main__":
    main()
