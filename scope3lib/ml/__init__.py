"""Machine learning: estimates for suppliers without their own data, hotspots, meter anomalies."""
