"""inf3kit: put models compiled for AWS Inferentia and Trainium into production on AWS."""

__version__ = "0.1.0"
