"""Element types that cross stage boundaries and one pyarrow schema per output dataset."""
