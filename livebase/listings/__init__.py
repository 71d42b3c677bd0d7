"""Product listings: SKUs, images, themes, GI claims, and bulk import and export.

- ``models``: the validated input of a listing, shared by the API and the importer;
- ``images``: checking that an uploaded image is an image, and storing it by content hash;
- ``tables``: reading and writing CSV (UTF-8 or GBK) and XLSX sheets;
- ``importer``: turning sheet rows into listings, with a problem per bad cell and line;
- ``store``: applying a listing to the database, keeping derived price and stock in step;
- ``bulk``: importing a checked sheet (all or nothing, or the good products) and exporting.
"""
