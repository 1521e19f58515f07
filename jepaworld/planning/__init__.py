"""jepaworld.planning"""
