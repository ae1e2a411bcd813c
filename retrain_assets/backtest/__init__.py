"""Replaying a landing folder through the real definitions: what would the policy have done?"""
