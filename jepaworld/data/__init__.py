"""jepaworld.data"""
