"""jepaworld.bench"""
