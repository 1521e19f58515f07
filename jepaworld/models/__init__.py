"""jepaworld.models"""
