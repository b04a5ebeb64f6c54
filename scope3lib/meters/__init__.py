"""Smart meters: the MQTT contract, devices and their broker accounts, the daily rollup into emissions."""
